"""Pure governance rules: risk policy, approval judgement, signatures verified by git."""
