"""Stage 6, what a run leaves behind: JUnit enrichment, summary.md, results.json,
report.html, history. Rendering lives only here."""
