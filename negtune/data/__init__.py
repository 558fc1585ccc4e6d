"""Data side: task registry, prompt variants, instance building, paper CSV format, collation."""
