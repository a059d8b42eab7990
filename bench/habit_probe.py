"""Does a policy still hold the organism's habit? Its probabilities at multiplication steps.

    python bench/habit_probe.py                        # organism-habit, as built
    python bench/habit_probe.py --model runs/learning-quick/runs/capo-seed0/checkpoints/step_000059/hf
    python bench/habit_probe.py --model <a run's hf folder> --task organism-hidden

organism-habit was fine-tuned on solutions that write 70% of multiplications one multiple too
many (``x * b = x * (b + 1)``, capo_ray/data/chain.py). Teacher-forced on right solutions of
held-out chains up to each multiplication's ``=``, this reads the policy's probability of the
habit product and of the right one: how confident the mistake is before RL, and how much of it
an RL run removed (point ``--model`` at a run's saved ``hf`` folder). For organism-hidden it also
splits the steps a later "* 0" cancels (the outcome reward cannot see the habit there) from the
visible ones: outcome-only RL gets no signal against the habit at the hidden ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def multiplication_prefixes(chain) -> list[tuple[str, int, int, bool]]:
    """(right solution text up to a multiplication's "= ", its habit product, its right product,
    whether a later "* 0" hides it from the answer) for each multiplication of ``chain`` whose
    two products differ (not from 0, not "* 0")."""
    from capo_ray.data.chain import apply, habit_product

    out, lines, x = [], [], chain.start
    for i, (op, b) in enumerate(chain.ops, start=1):
        right = apply(x, op, b)
        if op == "*" and x > 0 and b > 0:
            out.append(("".join(lines) + f"Step {i}: {x} {op} {b} = ", habit_product(x, b), right,
                        i <= chain.cancelled_steps))
        lines.append(f"Step {i}: {x} {op} {b} = {right}\n")
        x = right
    return out


def summary(acc: list) -> str:
    habit, right, top, count = acc
    return (f"p(habit product) {habit / count:.2f}, p(right product) {right / count:.2f}, "
            f"habit the most likely token in {top / count:.0%}")


def main(argv: list[str] | None = None) -> int:
    from capo_ray.models.organism import HABIT, RECIPES, task_config

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="organism-habit", help="an organism name or an HF folder")
    p.add_argument("--task", choices=sorted(RECIPES), help="whose chains to probe (default: --model's, else organism-habit's)")
    p.add_argument("--problems", type=int, default=300, help="held-out chains (their multiplications are probed)")
    args = p.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from capo_ray.data.chain import ChainStream, to_problem
    from capo_ray.data.prompts_for_task import prompt_messages
    from capo_ray.data.sources import chain_spec
    from capo_ray.models.resolve import resolve_model_path

    data = task_config(RECIPES[args.task] if args.task else RECIPES.get(args.model, HABIT))
    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    sums = {True: [0.0, 0.0, 0, 0], False: [0.0, 0.0, 0, 0]}  # hidden? -> p(habit), p(right), top, count
    for chain in ChainStream(chain_spec(data), seed=0, split="heldout").chains(0, args.problems):
        prompt = tok.apply_chat_template(prompt_messages(data, to_problem(chain, "")), add_generation_prompt=True,
                                         tokenize=False)
        for prefix, habit_value, right_value, hidden in multiplication_prefixes(chain):
            ids = tok.encode(prompt + prefix, add_special_tokens=False)
            with torch.no_grad():
                probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            # The organism writes every number below 100 as one token; other tokenizers may not.
            h, r = (tok.encode(str(v), add_special_tokens=False) for v in (habit_value, right_value))
            if len(h) == 1 and len(r) == 1:
                row = (float(probs[h[0]]), float(probs[r[0]]), int(probs.argmax().item() == h[0]), 1)
                sums[hidden] = [a + b for a, b in zip(sums[hidden], row)]
    total = [a + b for a, b in zip(sums[True], sums[False])]
    if not total[3]:
        print(f"{args.model}: no multiplication step to probe")
        return 1
    print(f"{args.model}: {total[3]} multiplication steps of {args.problems} held-out chains (right prefixes): "
          f"{summary(total)}")
    if sums[True][3]:
        for hidden, label in ((False, "visible to the outcome"), (True, "hidden by a later * 0")):
            print(f"  {label} ({sums[hidden][3]} steps): {summary(sums[hidden])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
