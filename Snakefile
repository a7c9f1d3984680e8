# rnnrepro: vanilla RNN vs LSTM on palindromes, the phased-LSTM gate and a character-level
# LSTM on Grimm's Fairy Tales, from an empty checkout to the report PDF.
#
#   snakemake --cores 8 --resources gpu=1                 # the full reproduction
#   snakemake --cores 2 --configfile config/test.yaml     # the tiny test config
#
# Studies in the config expand into training runs (workflow/rules/common.smk); every run
# trains once, whatever the number of figures that use it.
#
# `snakemake --lint` asks for a conda environment or container per rule. Every rule runs the
# same installed package (scripts/setup.sh, or environment.yml + `pip install -e .`), and a
# per-rule environment would install torch once per environment; so the rules declare none.
# It also notes that the training rules' shell commands read EXEC_ARGS from outside the rule:
# on purpose, since `params` are a rerun trigger and how a run is computed must never retrain
# it (workflow/rules/common.smk); each run's summary.json records what it ran with.

from snakemake.utils import min_version, validate

min_version("9.19")


# The default config; a --configfile replaces it instead of being merged into it (a merge
# could not drop a study). --config key=value still overrides single keys.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# report roles the config names itself (before the schema fills in the defaults): a name
# given that is not a study of the config is an error, a default one means "not in this config"
NAMED_REPORT_KEYS = set(config.get("report") or {}) if isinstance(config.get("report"), dict) else set()
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/palindrome.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/report.pdf",


onstart:
    write_run_table()


onerror:
    report_missing_runs()
