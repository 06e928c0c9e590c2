"""Local tools around the product: the `unique-codes` command line, local engines and `unique-codes serve`.

They drive the Lambda handlers (`issuer.app`, `refiller.app`) and the core from outside; nothing in `codepool`,
`issuer` or `refiller` imports them, and they do not ship in the Lambda artifact.
"""
