"""Pure Python rules every layer shares: limits, statuses, inputs, prompts, script planning, error types.

Nothing here imports torch, SQLAlchemy or FastAPI (an import-linter contract in pyproject.toml keeps it so).
"""
