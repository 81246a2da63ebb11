actor
    role = wizard
node
node
