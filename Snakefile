# rnnrepro: vanilla RNN vs LSTM on palindromes, the phased-LSTM gate and a character-level
# LSTM on Grimm's Fairy Tales, from an empty checkout to the report PDF.
#
#   snakemake --cores 8 --resources gpu=1                 # the full reproduction
#   snakemake --cores 2 --configfile config/test.yaml     # the tiny test config
#
# Studies in the config expand into training runs (workflow/rules/common.smk); every run
# trains once, whatever the number of figures that use it.
#
# Software: the Python that runs Snakemake (scripts/setup.sh), or with `--sdm conda` the
# environment every rule names (workflow/envs/rnnrepro.yaml, one environment for all; the
# report's adds TeX). `snakemake --lint` has nothing to say.

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.19")


report: "report/workflow.rst"  # the front page of `snakemake --report`


sys.path.insert(0, f"{workflow.basedir}/src")  # this checkout's package first
from rnnrepro.config import studies as S
from rnnrepro.config.spec import SpecError

# The rules name the code and the templates by paths in the checkout: run in it.
if Path.cwd().resolve() != Path(workflow.basedir).resolve() and not Path("src/rnnrepro").is_dir():
    raise WorkflowError(
        f"the working directory {Path.cwd()} is not the workflow's checkout "
        f"{workflow.basedir}: run snakemake there (cd, or --directory)"
    )

# The default config; a --configfile replaces it instead of being merged into it (a merge
# could not drop a study). --config key=value still overrides single top-level keys.
# Snakemake reads a --configfile itself, before this file, and names neither the line of a
# YAML error nor a missing file clearly: `rnnrepro check-config FILE` does (README). Read
# again here, a config file names the line of a YAML error and of a key given twice (which
# Snakemake's loader takes silently, keeping the last).
try:
    for path in workflow.overwrite_configfiles or ["config/config.yaml"]:
        S.load_config_file(path)
except SpecError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Checked before any job (studies.check_config, as `rnnrepro check-config` does), with
# the schema's defaults filled in; the runs it expands into are the DAG's.
try:
    RUNS, STUDY_RUNS, EXEC = S.check_config(
        config,
        f"{workflow.basedir}/workflow/schemas/config.schema.yaml",
        overrides=workflow.config_settings.config,  # --config key=value, read as their types
    )
except SpecError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/palindrome.smk"
include: "workflow/rules/text.smk"
include: "workflow/rules/phased.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_inputs,


localrules:
    runs,


rule runs:
    """Every training run and nothing after it: the rule to split the training by, e.g.
    `snakemake --batch runs=1/3 runs`, then 2/3 and 3/3, then `snakemake` for the rest."""
    input:
        [run_file(r, "summary.json") for r in RUNS],


onstart:
    check_device()
    say_if_no_tex()
    write_run_table()


onerror:
    report_missing_runs()
