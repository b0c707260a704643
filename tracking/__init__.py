"""The tracking app: signals, outcome checks, analytics. Built by the outcome-tracking issue."""
