"""The training engine and its entry points (pretrain, finetune_squad, classify)."""
