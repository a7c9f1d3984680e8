"""rnnrepro: vanilla RNN, LSTM and a character-level LSTM, reproduced end to end."""

__version__ = "0.2.0"
