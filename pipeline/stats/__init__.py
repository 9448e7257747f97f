"""Statistics over the store: the profile's figures per category and country."""
