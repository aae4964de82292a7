"""Stage 5: WSIS Action Line and SDG tagger (train, tag, explain, label sheets, consistency)."""
