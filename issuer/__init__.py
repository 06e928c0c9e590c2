"""The API-facing Lambda: claims codes and answers look-ups (`issuer.app.lambda_handler`)."""
