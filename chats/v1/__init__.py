"""``/v1/``: OpenAI's API for programs with personal API keys, over the same replies and ledger."""
