console.log('demo: not yet implemented');
