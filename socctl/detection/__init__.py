"""Sigma detections: load and validate detections/, convert with pySigma, evaluate against
the embedded store (including correlation rules), convert for Elasticsearch targets."""
