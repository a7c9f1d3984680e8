"""The report's text stays inside its margins, whatever the config or the corpus put in it: the
LaTeX log of a document built from the report's own preamble and table templates, filled with
long and hostile text, and the log of the test config's whole report, name no box that runs
past a margin (latex.overfull_boxes)."""

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from rnnrepro.report.latex import build_log, compile_pdf, environment, overfull_boxes

TEMPLATES = Path(__file__).resolve().parents[1] / "report" / "templates"

needs_tex = pytest.mark.skipif(not (shutil.which("latexmk") and shutil.which("pdftotext")),
                               reason="needs latexmk and pdftotext (texlive, poppler-utils)")

HOSTILE = "\\{}%$&#_^~'\"<>|`[]’‘“”«»–—…Ж中😀\ufeff\x07\t\n--<<,,"  # escapes, ligatures, placeholders
LONG_PATH = "/srv/data/" + "a_very_long_directory_name/" * 8 + "grimms_fairy_tales.txt"
STUDY = "lstm_adam_a_study_name_much_longer_than_any_column_expects"

DOC = r"""\documentclass[11pt,a4paper]{article}
((* include "preamble.tex.j2" *))
((* from "text_tables.tex.j2" import greedy_table, best_table, temperature_table,
   sampling_table, completions_table *))
\begin{document}
\section{Text from the config}
The corpus is read from ((( path ))), or in typewriter type from ((( path|tt ))); the study
((( study|tt ))) trains with the prompt ((( prompt ))) and the word ((( word ))).

\begin{figure}[t]\centering\rule{2cm}{0.42\textheight}\caption{A float at the top of the page.}\end{figure}
A short table right after a float that sits at the top of the page.
((( greedy_table(short, 30) )))
Text between the table and a float that may be placed here.
\begin{table}[htbp]\centering\rule{2cm}{0.42\textheight}\caption{A float after the table.}\end{table}
((( filler )))

((( greedy_table(greedy, 5000) )))
((( best_table(best) )))
((( temperature_table(best) )))
((( sampling_table(temps, sampling) )))
((( completions_table(completions) )))
((* include "table_palindrome.tex.j2" *))
\end{document}
"""


def layout_doc(tmp_path):
    """The document DOC with long, unbroken and hostile text in every place the config or the
    corpus fills. The letters J, Q, Z appear only in the samples counted in the PDF."""
    hostile = HOSTILE * 12
    samples = dict(best=hostile, final="x" * 700, greedy="e" * 300, random=hostile)
    row = dict(study=STUDY, input_length=10, variant="LSTM, N(0, sd 0.01), hidden 64, " + STUDY,
               optimizer="rmsprop", lr=1e-05, steps=1_000_000, seeds=10, converged=10, lost=0,
               interval=(0.72, 1.0), final=0.999, final_sd=0.001, best=1.0, steps_to=999_999.0)
    context = dict(
        path=LONG_PATH, study=STUDY, prompt="Once" * 60, word="Rumpelstiltskin" * 3,
        filler="Words of a paragraph that fills the page. " * 60,
        short=[NS(step=20, text="T" + " " * 29)],
        greedy=[NS(step=1_000_000, text="Q" * 5000), NS(step=2, text=hostile)],
        best=[NS(temperature=0.5, method="random", step=1_000_000, best_step=1_000_000,
                 final_step=1_000_000,
                 **samples)],
        temps=[0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
        sampling=[NS(step=100_000, by_t={0.25: "x" * 900, 1.0: hostile, 2.0: None})],
        completions=[dict(prompt="J" * 1500, method="greedy", completion="Z" * 2000),
                     dict(prompt="At first " + "Rapunzel" * 30 + " was", method="random",
                          completion=hostile + "\n" * 40)],
        table_studies={STUDY: [row, {**row, "variant": "", "lost": 3}]}, threshold=0.99,
        init=None)
    tex = tmp_path / "layout.tex"
    tex.write_text(environment(TEMPLATES).from_string(DOC).render(**context), encoding="utf-8")
    return tex


def offending(log_path):
    boxes = overfull_boxes(Path(log_path).read_text(encoding="utf-8", errors="replace"))
    return "text past the margins (LaTeX log " + str(log_path) + "):\n" + "\n".join(boxes), boxes


@needs_tex
def test_long_and_hostile_text_stays_inside_the_margins(tmp_path):
    tex = layout_doc(tmp_path)
    pdf = compile_pdf(tex, tmp_path / "out" / "layout.pdf")
    message, boxes = offending(build_log(tex))
    assert not boxes, message
    text = subprocess.run(["pdftotext", "-raw", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    # every character of the samples cut across rows and pages reaches the PDF
    assert (text.count("Q"), text.count("J"), text.count("Z")) == (5000, 1500, 2000)


def test_the_log_reader_names_wide_hboxes_and_every_vbox():
    log = ("Overfull \\hbox (0.38013pt too wide) in paragraph at lines 78--83\n"
           "\\T1/lmr/m/n/10.95 The de-fault\n"
           "Overfull \\hbox (8.13965pt too wide) in alignment at lines 184--194\n"
           " [] [] []\n"
           "Overfull \\vbox (182.52351pt too high) has occurred while \\output is active []\n"
           "\n"
           "Underfull \\hbox (badness 10000) in paragraph at lines 1--2\n"
           "Overfull \\hbox (39.87883pt too wide) in paragraph at lines 891--901\n"
           "\\T1/lmtt/m/n/10.95 benchmarks/course_baseline.py\n")
    assert overfull_boxes(log) == [
        "Overfull \\hbox (8.13965pt too wide) in alignment at lines 184--194: [] [] []",
        "Overfull \\vbox (182.52351pt too high) has occurred while \\output is active []",
        "Overfull \\hbox (39.87883pt too wide) in paragraph at lines 891--901: "
        "\\T1/lmtt/m/n/10.95 benchmarks/course_baseline.py"]
    assert len(overfull_boxes(log, tolerance=0)) == 4
    assert overfull_boxes("") == []


@pytest.mark.slow
@needs_tex
def test_the_test_configs_report_stays_inside_the_margins(finished_workflow):
    message, boxes = offending(finished_workflow / "results" / "report" / "build" / "report.log")
    assert not boxes, message
