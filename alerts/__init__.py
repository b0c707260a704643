"""The alerts app: tiers, outbox, Telegram delivery. Built by the alerts issue."""
