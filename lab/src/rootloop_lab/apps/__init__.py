"""The lab's small services besides payments-api. Each runs as its own process."""
