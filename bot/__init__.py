"""The Rasa assistant: training data by topic (nlu/, rules/, stories/, tests/) and the channel Rasa serves."""
