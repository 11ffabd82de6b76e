"""Deep Q-learning (DQN with the Rainbow parts; issue 4 is building it): targets first."""
