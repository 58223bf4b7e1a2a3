"""The Bradley-Terry preference-trained ensemble scorer: network (`net`), scorer, training and
calibration metrics (`scorer`), checkpoints (`io`)."""
