"""The report's figures: which tables each one reads, and its caption.

Light on purpose (no plotting imports): the Snakefile reads FIGURES to wire each figure
to the studies it draws, so a figure rebuilds only when its own runs change. The drawing
code is in plots.py.
"""

# name -> studies whose tables it reads, extra tables, caption (LaTeX-safe prose; values
# that come from results are added by the report, not here)
FIGURES = {
    "fig01_rnn_rmsprop_loss": {
        "studies": ["rnn_rmsprop"],
        "caption": "Vanilla RNN trained with RMSprop: training loss for each input length.",
    },
    "fig02_rnn_adam_loss": {
        "studies": ["rnn_adam"],
        "caption": "Vanilla RNN trained with Adam: training loss for each input length.",
    },
    "fig03_rnn_adam_long_loss": {
        "studies": ["rnn_adam_long", "rnn_adam_40k"],
        "caption": "Vanilla RNN with Adam trained for longer: training loss for the longest input lengths.",
    },
    "fig04_rnn_accuracy": {
        "studies": ["rnn_adam", "rnn_rmsprop", "lstm_rmsprop", "lstm_adam"],
        "caption": "(a) Held-out accuracy of the vanilla RNN (Adam) during training; "
                   "(b) final and best held-out accuracy against input length, RNN and LSTM, "
                   "one panel per optimizer.",
    },
    "fig05_lstm_rmsprop_loss": {
        "studies": ["lstm_rmsprop"],
        "caption": "LSTM trained with RMSprop: training loss for each input length.",
    },
    "fig06_lstm_adam_loss": {
        "studies": ["lstm_adam", "lstm_adam_lr01"],
        "caption": "LSTM trained with Adam: training loss for each input length, and input length 10 "
                   "with learning rate 0.01.",
    },
    "fig07_lstm_accuracy": {
        "studies": ["lstm_adam", "lstm_adam_lr01"],
        "caption": "LSTM trained with Adam: held-out accuracy during training.",
    },
    "fig08_time_gate": {
        "studies": [],
        "caption": "The phased-LSTM time gate $k_t$ drawn by the project's own gate function.",
    },
    "fig_gradient_norms": {
        "studies": [],
        "tables": ["grad_norms.csv"],
        "caption": "Measured gradient norms of the loss with respect to each hidden state, RNN and "
                   "LSTM at initialisation.",
    },
    "fig09_text_curves": {
        "studies": ["text"],
        "caption": "Character-level LSTM on Grimm's Fairy Tales (training temperature 1): loss and accuracy.",
    },
    "fig10_text_temperature": {
        "studies": ["text"],
        "caption": "Character-level LSTM trained at temperatures 0.5, 1 and 2: loss and accuracy.",
    },
    "fig11_init_study": {
        # lstm_adam_lr01: the default init's lr-0.01 runs, read when judging the pattern
        "studies": ["init", "init_lr", "lstm_adam_lr01"],
        "caption": "Initialisation study (RNN and LSTM, Adam, one seed unless configured): final "
                   "held-out accuracy against input length for each initialisation (top), and the "
                   "training loss under the initialisation closest to the original's pattern (bottom).",
    },
}


def rst_caption(name):
    """Figure `name`'s caption for Snakemake's HTML report (reStructuredText): the PDF's
    caption, its $math$ as :math: roles."""
    import re

    return re.sub(r"\$([^$]+)\$", r":math:`\1`", FIGURES[name]["caption"])
