"""Clinical covariates and omics beside the tiles: table loading (:mod:`.tables`), the fold-fitted
encoder (:mod:`.encoder`), the covariates-only baseline (:mod:`.baseline`) and permutation
importance (:mod:`.importance`)."""
