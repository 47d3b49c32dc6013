"""Click commands, one module each; each imports only click at the top."""
