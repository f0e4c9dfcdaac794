"""LocalStack Lambda runtime executor that runs Node.js functions as local processes (no Docker)."""
