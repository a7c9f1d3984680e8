"""The report's figures, each registered once: its drawing, its height, the studies whose
tables it reads, other tables it reads, and its caption.

Light on purpose (no plotting imports): the Snakefile reads FIGURES to wire each figure
to the studies it draws, so a figure rebuilds only when its own runs change. A drawing
names the function plots.draw_<drawing> that draws it (a test checks each exists).
"""

from rnnrepro.config import roles as R
from rnnrepro.config.roles import COLLAPSE_STUDIES, INIT_LR_STUDY, INIT_STUDY, TEXT_STUDY

# the report's wording of the bands ("curves show the mean over seeds with {BAND_TEXT}")
BAND_TEXT = ("±1 standard deviation across seeds (on logarithmic axes, the palindrome losses and "
             "gradient norms: geometric mean ×/÷ one geometric standard deviation)")

# name -> drawing, height (inches), studies, tables (beside the studies' own),
# caption (LaTeX-safe prose; values that come from results are added by the report)
FIGURES = {
    "fig01_rnn_rmsprop_loss": {
        "drawing": "loss", "height": 3.0,
        "studies": [R.RNN_RMSPROP],
        "caption": "Vanilla RNN trained with RMSprop: training loss for each input length.",
    },
    "fig02_rnn_adam_loss": {
        "drawing": "loss", "height": 3.0,
        "studies": [R.RNN_ADAM],
        "caption": "Vanilla RNN trained with Adam: training loss for each input length.",
    },
    "fig03_rnn_adam_long_loss": {
        "drawing": "loss", "height": 3.0,
        "studies": [R.RNN_ADAM_LONG, R.RNN_ADAM_40K],
        "caption": "Vanilla RNN with Adam trained for longer: training loss for the longest input lengths.",
    },
    "fig04_rnn_accuracy": {
        "drawing": "rnn_accuracy", "height": 5.2,
        "studies": [R.RNN_ADAM, R.RNN_RMSPROP, R.LSTM_RMSPROP, R.LSTM_ADAM],
        "caption": "(a) Held-out accuracy of the vanilla RNN (Adam) during training; "
                   "(b) final and best held-out accuracy against input length, RNN and LSTM, "
                   "one panel per optimizer.",
    },
    "fig_collapse": {
        "drawing": "collapse", "height": 8.0,  # at most: 2.3 inches a row of panels
        "studies": COLLAPSE_STUDIES,
        "caption": "Runs that reached the convergence criterion and then lost it, one panel per "
                   "setting: held-out accuracy (solid, left axis) and the gradient norm before "
                   "clipping (thin, right axis, logarithmic), with the clipping threshold "
                   "dashed. A cross marks the evaluation at which each run was lost.",
    },
    "fig05_lstm_rmsprop_loss": {
        "drawing": "loss", "height": 3.0,
        "studies": [R.LSTM_RMSPROP],
        "caption": "LSTM trained with RMSprop: training loss for each input length.",
    },
    "fig06_lstm_adam_loss": {
        "drawing": "loss", "height": 3.0,
        "studies": [R.LSTM_ADAM, R.LSTM_ADAM_LR],
        "caption": "LSTM trained with Adam: training loss for each input length, and input length 10 "
                   "with learning rate 0.01.",
    },
    "fig07_lstm_accuracy": {
        "drawing": "accuracy", "height": 3.0,
        "studies": [R.LSTM_ADAM, R.LSTM_ADAM_LR],
        "caption": "LSTM trained with Adam: held-out accuracy during training.",
    },
    "fig08_time_gate": {
        "drawing": "time_gate", "height": 2.7,
        "studies": [],
        "caption": "The phased-LSTM time gate $k_t$ drawn by the project's own gate function.",
    },
    "fig_gradient_norms": {
        "drawing": "gradient_norms", "height": 2.9,
        "studies": [],
        "tables": ["grad_norms.csv"],
        "caption": "Measured gradient norms of the loss with respect to each hidden state: the "
                   "RNN, the LSTM and the phased LSTM (training mode, leak $\\alpha$ = 0.001) at "
                   "initialisation.",
    },
    "fig_phased_memory": {
        "drawing": "phased_memory", "height": 2.6,
        "studies": list(R.MEMORY_STUDIES),
        "caption": "Memory on palindromes: held-out accuracy of the LSTM and of the phased LSTM "
                   "with short and with long periods (their settings: the text), one panel per "
                   "input length.",
    },
    "fig_extrapolation": {
        "drawing": "extrapolation", "height": 2.5,
        "studies": list(R.MEMORY_STUDIES),
        "tables": ["extrapolation.csv"],
        "caption": "Length extrapolation: the memory studies' models trained at one input length "
                   "scored on held-out palindromes of that length and longer ones.",
    },
    "fig_frequency": {
        "drawing": "frequency", "height": 2.5,
        "studies": [R.FREQUENCY_STUDY],
        "caption": "The frequency-discrimination task: held-out accuracy of the LSTM (the time "
                   "as a second input) and the phased LSTM (the time in its gate), one panel per "
                   "sampling of the sine waves.",
    },
    "fig_timing": {
        "drawing": "timing", "height": 2.4,
        "studies": [R.LEARN_STUDY],
        "caption": "Which timing parameters to learn (phased LSTM, frequency task): the "
                   "median period $\\tau$ over the units, $r_{on}$ and the share of "
                   "(sample, unit) pairs with an open gate on the held-out set, over training.",
    },
    "fig09_text_curves": {
        "drawing": "text_curves", "height": 2.9,
        "studies": [TEXT_STUDY],
        "caption": "Character-level LSTM on Grimm's Fairy Tales (training temperature 1): loss and accuracy.",
    },
    "fig10_text_temperature": {
        "drawing": "text_temperature", "height": 2.9,
        "studies": [TEXT_STUDY],
        "caption": "Character-level LSTM trained at temperatures 0.5, 1 and 2: loss and accuracy.",
    },
    "fig_text_overfit": {
        "drawing": "text_overfit", "height": 2.7,
        "studies": [TEXT_STUDY],
        "caption": "Training loss (training batches, smoothed) and held-out loss (the tales' end) "
                   "of every text run on one axis, one panel per training temperature; the "
                   "dotted line marks the evaluation with the lowest held-out loss. Where a "
                   "temperature has several seeds, the first is marked and the others are drawn "
                   "fainter.",
    },
    "fig11_init_study": {
        "drawing": "init_study", "height": 5.6,
        # lstm_adam_lr01: the default init's lr-0.01 runs, read when judging the pattern;
        # scorecard_init.csv: the scorecard's verdicts per initialisation (not recomputed here)
        "studies": [INIT_STUDY, INIT_LR_STUDY, R.LSTM_ADAM_LR],
        "tables": ["scorecard_init.csv"],
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
