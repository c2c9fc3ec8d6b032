"""payments-api: takes payments, settles them in batches."""
