"""Plans: an allowance per billing period, and where a company stands against it."""
