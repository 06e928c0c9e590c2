"""The scheduled Lambda that keeps every pool topped up (`refiller.app.lambda_handler`)."""
