"""What a user asks of a claim besides the core check: check a batch, fix, code, explain,
hold against a remittance."""
