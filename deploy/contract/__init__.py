"""The board-side contract: what the stages and the board agree on (numpy and the standard library only)."""
