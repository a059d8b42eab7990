import pytest

from capo_ray.config.compose import compose_config
from capo_ray.driver.placement import ActorPlan, ResourceError, check_fits, plan_resources


def test_cpu_plan_fits_two_cores():
    plans = plan_resources(compose_config())
    check_fits(plans, {"CPU": 2.0}, [{"CPU": 2.0}])
    assert {p.role for p in plans} == {"learner", "rollout", "reference"}  # arith critic runs in the driver


def test_llm_critic_adds_a_critic_pool():
    plans = plan_resources(compose_config(["critic=llm", "critic.num_engines=2"]))
    assert [p.count for p in plans if p.role == "critic"] == [2]


def test_missing_resources_are_named():
    plans = plan_resources(compose_config(["cluster=gpu_1node"]))
    with pytest.raises(ResourceError) as err:
        check_fits(plans, {"CPU": 64.0, "GPU": 4.0}, [{"CPU": 64.0, "GPU": 4.0}])
    msg = str(err.value)
    assert "GPU: the plan needs 8, the cluster has 4" in msg


def test_an_actor_must_fit_on_one_node():
    plans = [ActorPlan("critic", 1, 1.0, 4.0)]
    # 4 GPUs in total, but spread 2 + 2: a TP-4 engine cannot be placed
    with pytest.raises(ResourceError, match="on a single node"):
        check_fits(plans, {"CPU": 8.0, "GPU": 4.0}, [{"CPU": 4.0, "GPU": 2.0}, {"CPU": 4.0, "GPU": 2.0}])




def test_largest_bundles_get_placed_first():
    from capo_ray.driver.placement import placement_order

    order = [p.role for p in placement_order(plan_resources(compose_config(["cluster=gpu_2node"])))]
    assert order[0] == "critic"  # 4-GPU bundles before the 1-GPU ones
    cpu = [p.role for p in placement_order(plan_resources(compose_config()))]
    assert cpu == ["learner", "rollout", "reference"]  # 0.5-CPU bundles before 0.25
