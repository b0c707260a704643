"""The scoring app: unified score, tiers, confirmations, ranking.

Built by the scan-pipeline issue."""
