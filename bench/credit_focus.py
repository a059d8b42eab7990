"""Where does outcome-only credit land inside a response? A diagnostic for the learning study.

    python bench/credit_focus.py                      # the organism, 48 train problems x 8 samples
    python bench/credit_focus.py --problems 16 --samples 4 --model organism-small

GRPO gives every token of a response the same advantage, but the push a token's advantage
gives its logits is A * (onehot(y) - p), whose size is about 1 - p(y): a token the policy was
sure of barely moves. So outcome credit is already concentrated where the policy hesitated,
and how much a step critic adds depends on where that is. This samples the policy at
temperature 1 (what RL rollouts see), flags steps with the arith critic's noise-free checks
(the question's included), and sums 1 - p(y) over four kinds of token: in right or wrong
answers, inside or outside a flagged step. If most of a wrong answer's push already falls on
its flagged steps, CAPO's localisation adds little to what GRPO does there; the push on the
flagged steps of *right* answers is what GRPO reinforces and CAPO turns into a penalty.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def token_kinds(text: str, offsets: list[tuple[int, int]], question: str, correct: bool) -> list[str]:
    """One label per token: "<right|wrong> answer, <flagged|other> step"."""
    from capo_ray.critics.step_errors import wrong_step_spans

    flagged = wrong_step_spans(text, question)
    answer = "right" if correct else "wrong"
    kinds = []
    for first, end in offsets:
        inside = any(first < b and end > a for a, b in flagged)
        kinds.append(f"{answer} answer, {'flagged' if inside else 'other'} step")
    return kinds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="organism", help="an organism name (organism, organism-habit, ...) or an HF folder")
    p.add_argument("--problems", type=int, default=48)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from capo_ray.data.prompts_for_task import prompt_messages
    from capo_ray.data.sources import make_source
    from capo_ray.models.organism import FULL, RECIPES, task_config
    from capo_ray.models.resolve import resolve_model_path
    from capo_ray.rewards.exact import exact_verdict

    torch.manual_seed(args.seed)
    recipe = RECIPES.get(args.model, FULL)  # an HF folder: asked the full organism's task
    path = resolve_model_path(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    data = task_config(recipe, args.seed)
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # kind -> [tokens, sum of 1 - p]
    for problem in make_source(data, "train").batch(0, args.problems):
        text = tok.apply_chat_template(prompt_messages(data, problem), add_generation_prompt=True, tokenize=False)
        prompt = torch.tensor([tok.encode(text, add_special_tokens=False)])
        with torch.no_grad():
            rows = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True, temperature=1.0,
                                  top_k=0, top_p=1.0, max_new_tokens=64, num_return_sequences=args.samples,
                                  eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            probs = torch.softmax(model(rows).logits.float(), dim=-1)  # [samples, L, vocab]
        start = prompt.shape[1]
        for row, row_probs in zip(rows.tolist(), probs):
            response = row[start:]
            if tok.eos_token_id in response:
                response = response[: response.index(tok.eos_token_id) + 1]
            pieces = [tok.decode([t], skip_special_tokens=True) for t in response]
            ends = [sum(len(x) for x in pieces[: i + 1]) for i in range(len(pieces))]
            offsets = [(end - len(piece), end) for piece, end in zip(pieces, ends)]
            answer_text = "".join(pieces)
            correct = exact_verdict(answer_text, problem.answer).correct
            for i, kind in enumerate(token_kinds(answer_text, offsets, problem.question, correct)):
                p_y = float(row_probs[start + i - 1, response[i]])  # position start+i-1 predicts token i
                totals[kind][0] += 1
                totals[kind][1] += 1.0 - p_y
    print(f"{args.model}: {args.problems} train problems x {args.samples} samples at temperature 1")
    print("| tokens | count | mean 1 - p | share of the push within its answers |")
    print("|---|---|---|---|")
    for answer in ("right", "wrong"):
        within = sum(v[1] for k, v in totals.items() if k.startswith(answer))
        for kind in (f"{answer} answer, flagged step", f"{answer} answer, other step"):
            count, push = totals.get(kind, [0, 0.0])
            print(f"| {kind} | {count} | {push / max(count, 1):.3f} | {push / within if within else 0:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
