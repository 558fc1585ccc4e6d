"""Training: recipe checks, dry-run plan, the trainer loop and its step, checkpoints and their state."""
