"""capo-ray: CAPO (generative credit assignment) RL training for LLM reasoning on Ray."""

__version__ = "0.1.0"
