use logkv_store::{ScanOptions, Store, StoreOptions, WriteBatch};

#[test]
fn put_get_delete_history_scan_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let v1 = store.put(b"a", b"1").unwrap();
    let v2 = store.put(b"a", b"2").unwrap();
    store.put(b"b", b"").unwrap();
    let mut batch = WriteBatch::new();
    batch.put(b"c".to_vec(), b"3".to_vec()).delete(b"b".to_vec());
    let v4 = store.write(&batch).unwrap();
    assert_eq!(store.get(b"a").unwrap().unwrap().data, b"2");
    assert_eq!(store.get_at(b"a", v1).unwrap().unwrap().data, b"1");
    assert_eq!(store.get(b"b").unwrap(), None);
    assert_eq!(store.get_at(b"b", v4 - 1).unwrap().unwrap().data, b"");
    assert_eq!(store.history(b"a").unwrap().iter().map(|h| h.version).collect::<Vec<_>>(), vec![v2, v1]);
    let keys: Vec<_> = store.scan(ScanOptions::default()).map(|r| r.unwrap().0).collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
    assert_eq!(store.delete(b"zz").unwrap(), None);
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.get(b"a").unwrap().unwrap().data, b"2");
    assert_eq!(store.get_at(b"a", v1).unwrap().unwrap().data, b"1");
    assert_eq!(store.len(), 2);
    let err = Store::open(dir.path(), StoreOptions::default()).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}
