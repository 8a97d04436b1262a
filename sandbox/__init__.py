"""The built-in sandbox: emulated Greenhouse, Keap and HighLevel APIs over a synthetic world."""
