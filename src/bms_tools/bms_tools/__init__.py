"""The bms command line: launcher, bags, topic inspection."""
