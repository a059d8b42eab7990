"""Placement across nodes: a fake two-node cluster (ray.cluster_utils.Cluster) where the
learner cannot share a node with the engine; actors land as planned and still train."""

import json

import pytest
import ray
from ray.cluster_utils import Cluster
from ray.util.placement_group import placement_group_table

from capo_ray.driver.cluster import start_actors
from capo_ray.driver.trainer import Trainer
from capo_ray.models.resolve import load_policy_tokenizer

pytestmark = pytest.mark.slow


def test_two_node_placement_and_training(tiny_config, tmp_path):
    # Ray's fake cluster must use the machine's own address: given 127.0.0.1 it still advertises
    # the node IP, and a driver then waits for a GCS that listens elsewhere (Ray 2.60).
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    workers = None
    try:
        cfg = tiny_config(f"cluster.address={cluster.address}", "learner.num_workers=1", "cluster.learner_cpus=1.0",
                          "cluster.rollout_cpus=0.5", "cluster.reference_cpus=0.5", "trainer.steps=1")
        workers = start_actors(cfg)
        nodes = {role: {b for b in placement_group_table(pg)["bundles_to_node_id"].values()}
                 for role, pg in workers.groups.by_role.items()}
        # 1 CPU per node: the learner fills one node, engine and reference share the other
        assert len(nodes["learner"]) == 1 and nodes["learner"].isdisjoint(nodes["rollout"])
        assert nodes["rollout"] == nodes["reference"]
        run_dir = tmp_path / "run2"
        run_dir.mkdir()
        history = Trainer(cfg, workers, load_policy_tokenizer("tiny"), run_dir).fit()
        assert history[0]["weight_version"] == 1
        assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["step"] == 0
    finally:
        if workers is not None:
            workers.shutdown()
        ray.shutdown()
        cluster.shutdown()
