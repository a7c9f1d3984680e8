localrules:
    download_corpus,
    corpus_stats,


rule download_corpus:
    # first: a network or checksum failure shows within seconds, not after hours of training
    priority: 100
    output:
        config["corpus"]["path"],
    params:
        sha256=config["corpus"]["sha256"],  # what the file is: a new one is downloaded
    log:
        "logs/download_corpus.log",
    resources:
        fetch=FETCH_ARGS,  # how it is fetched (urls, retries, ...): changing it reruns nothing
    conda:
        ENV
    shell:
        "rnnrepro download --sha256={params.sha256} --out={output:q} {resources.fetch}"
        " > {log:q} 2>&1"


rule corpus_stats:
    """Corpus statistics; and the report's prompts checked against the corpus as soon as it
    is here, before any text run trains (a prompt character it lacks fails this job)."""

    # right after the download, before training jobs take the cores
    priority: 100
    input:
        config["corpus"]["path"],
    output:
        "results/tables/corpus_stats.json",
    params:
        prompts=config["report"]["prompts"],
    log:
        "logs/corpus_stats.log",
    conda:
        ENV
    shell:
        "rnnrepro corpus-stats --corpus={input:q} --out={output:q} -- {params.prompts:q}"
        " > {log:q} 2>&1"
