localrules:
    download_corpus,
    corpus_stats,


rule download_corpus:
    output:
        config["corpus"]["path"],
    params:
        urls=config["corpus"]["urls"],
        sha256=config["corpus"]["sha256"],
        retries=config["corpus"]["retries"],
        timeout=config["corpus"]["timeout"],
        backoff=config["corpus"]["backoff"],
    log:
        "logs/download_corpus.log",
    shell:
        "rnnrepro download --url {params.urls:q} --sha256 {params.sha256} --out {output:q}"
        " --retries {params.retries} --timeout {params.timeout} --backoff {params.backoff}"
        " > {log:q} 2>&1"


rule corpus_stats:
    input:
        config["corpus"]["path"],
    output:
        "results/tables/corpus_stats.json",
    log:
        "logs/corpus_stats.log",
    shell:
        "rnnrepro corpus-stats --corpus {input:q} --out {output:q} > {log:q} 2>&1"
