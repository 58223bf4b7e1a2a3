"""The Bradley-Terry preference-trained ensemble scorer: configs (`config`), network (`net`),
scorer, training and calibration metrics (`scorer`), checkpoints (`io`)."""
