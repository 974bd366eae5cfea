"""What every stage stands on: user errors, safe node text, redaction, channel names,
progress lines. Imports nothing else of preflight."""
