"""The credit inspector: ``capo-ray-inspect RUN_DIR`` turns a run's ``samples.jsonl`` and
``metrics.jsonl`` into static HTML pages (Jinja2 templates, matplotlib plots embedded as
PNG data, no network or server needed): one page per logged step showing each response's
steps coloured by the critic's vote, its token rewards and advantages as a heat map over the
policy's own tokens, the k critiques with their parsed verdicts, the outcome and the reference
answer; and a metrics page of plots against steps. See docs/operations.md."""
