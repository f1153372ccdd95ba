# fragment, filled by its module
