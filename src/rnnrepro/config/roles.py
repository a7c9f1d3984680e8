"""The studies the report reads, by the names the config gives them: the one owner of those
names, of each one's kind and of the role it plays (the figure registry, the scorecard, the
report's context and, through the context, its templates ask here).

A study of another name is trained but not reported; `studies.check_report_studies` checks
that each of these, where the config has it, is of its kind.
"""

RNN_RMSPROP, RNN_ADAM = "rnn_rmsprop", "rnn_adam"
RNN_ADAM_LONG, RNN_ADAM_40K = "rnn_adam_long", "rnn_adam_40k"
LSTM_RMSPROP, LSTM_ADAM, LSTM_ADAM_LR = "lstm_rmsprop", "lstm_adam", "lstm_adam_lr01"
INIT_STUDY, INIT_LR_STUDY = "init_study", "init_lr01"
TEXT_STUDY = "text_temperature"
# Section 2: the LSTM and the phased LSTM (short and long periods) on palindromes, and the
# frequency task (regular against asynchronous samples; which timing parameters learn)
LSTM_MEMORY, PHASED_SHORT, PHASED_LONG = "lstm_memory", "phased_short", "phased_long"
FREQUENCY_STUDY, LEARN_STUDY = "frequency_sampling", "frequency_learn"

REPORT_STUDIES = {
    RNN_RMSPROP: "palindrome", RNN_ADAM: "palindrome", RNN_ADAM_LONG: "palindrome",
    RNN_ADAM_40K: "palindrome", LSTM_RMSPROP: "palindrome", LSTM_ADAM: "palindrome",
    LSTM_ADAM_LR: "palindrome", INIT_STUDY: "palindrome", INIT_LR_STUDY: "palindrome",
    TEXT_STUDY: "text", LSTM_MEMORY: "palindrome", PHASED_SHORT: "phased", PHASED_LONG: "phased",
    FREQUENCY_STUDY: "frequency", LEARN_STUDY: "frequency",
}
MEMORY_STUDIES = (LSTM_MEMORY, PHASED_SHORT, PHASED_LONG)  # Section 2's palindrome studies

# The initialisation studies, which the report treats in a section of their own; the main
# palindrome studies are the others, and their lost runs are what the collapse figure and the
# report's collapse table show (the initialisation studies' default runs are among them);
# Section 2's LSTM runs are Section 2's.
INIT_STUDIES = (INIT_STUDY, INIT_LR_STUDY)
COLLAPSE_STUDIES = [s for s, kind in REPORT_STUDIES.items()
                    if kind == "palindrome" and s not in INIT_STUDIES + MEMORY_STUDIES]


def _lengths(study, lengths, want):
    return [(study, x, want) for x in lengths]


# The original's pattern of convergence, as (study, input length, converges?) expectations:
# claim 1 (the RNN with Adam), claim 5 (the LSTM with Adam, and at lr 0.01), claim 2 (the RNN
# trained longer).
RNN_PATTERN = _lengths(RNN_ADAM, (5, 6, 7), True) + _lengths(RNN_ADAM, (8, 9, 10), False)
LSTM_PATTERN = (_lengths(LSTM_ADAM, (5, 6, 7, 8, 9), True) + _lengths(LSTM_ADAM, (10,), False)
                + _lengths(LSTM_ADAM_LR, (10,), True))
LONG_PATTERN = (_lengths(RNN_ADAM_LONG, (8, 9), True) + _lengths(RNN_ADAM_LONG, (10,), False)
                + _lengths(RNN_ADAM_40K, (10,), False))

# where claim 5's learning rates are compared (the length-10 runs at lr 0.01) and the studies
# whose LSTM runs at that length are read, under every initialisation and learning rate
LR_STUDY = LSTM_ADAM_LR
LR_STUDIES = (LSTM_ADAM, LR_STUDY, INIT_STUDY, INIT_LR_STUDY)

# every name above, as the report's templates reach them (`studies.rnn_adam`)
NAMES = {name: name for name in REPORT_STUDIES}
