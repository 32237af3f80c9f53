"""Online behaviour agents (DecQN) that generate the offline datasets."""
