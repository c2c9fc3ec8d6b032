"""One module per alert source: authenticate the sender, parse its payload into ``Alert``s."""
