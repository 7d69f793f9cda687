"""The rasa-sdk action server: one module per skill (flows, knowledge, handoff)."""
