"""Aggregation, figures and the HTML report. Reads result files; never trains."""
