from rnnrepro.cli import main

raise SystemExit(main())
