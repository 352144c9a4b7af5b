import GRDB

/// The registry schema. Migrations are append-only: a migration that has shipped is never
/// edited; changes come as new migrations.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "baseModel") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("architecture", .text).notNull()
                t.column("path", .text).notNull()
                // sha256 of the weights' bytes: what an adapter names its base by.
                t.column("fingerprint", .text).notNull().unique()
                // The LlamaConfig as JSON: sizes, heads, vocabulary.
                t.column("shapes", .text).notNull()
                t.column("fileSize", .integer).notNull()
                t.column("modifiedAt", .double).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "adapter") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("version", .integer).notNull()
                t.belongsTo("baseModel", onDelete: .restrict).notNull()
                t.column("rank", .integer).notNull().check { $0 > 0 }
                t.column("alpha", .double).notNull()
                t.column("targets", .text).notNull()
                t.column("path", .text).notNull()
                // JSON {file name: sha256} of every file in the folder.
                t.column("files", .text).notNull()
                t.column("sha256", .text).notNull()
                t.column("sizeBytes", .integer).notNull()
                t.column("createdAt", .datetime).notNull()
                t.belongsTo("parent", inTable: "adapter", onDelete: .setNull)
                t.column("datasetName", .text)
                t.column("datasetSHA256", .text)
                t.column("hyperparameters", .text)
                t.column("trainLoss", .double)
                t.column("validLoss", .double)
                t.column("description", .text)
                t.uniqueKey(["name", "version"])
            }
            try db.create(table: "adapterTag") { t in
                t.belongsTo("adapter", onDelete: .cascade).notNull()
                t.column("tag", .text).notNull()
                t.primaryKey(["adapterId", "tag"])
            }
            try db.create(table: "trainingRun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.belongsTo("adapter", onDelete: .cascade)
                t.column("status", .text).notNull()
                    .check { ["running", "completed", "failed", "interrupted"].contains($0) }
                t.column("steps", .integer).notNull()
                t.column("totalSteps", .integer).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.column("seconds", .double).notNull()
                t.column("tokensPerSecond", .double).notNull()
                t.column("lossCurve", .text).notNull()
                t.column("validationCurve", .text).notNull()
                t.column("hyperparameters", .text).notNull()
                t.column("datasetName", .text)
                t.column("datasetSHA256", .text)
            }
            try db.create(table: "evaluation") { t in
                t.autoIncrementedPrimaryKey("id")
                // NULL adapter: the base model alone.
                t.belongsTo("adapter", onDelete: .cascade)
                t.belongsTo("baseModel", onDelete: .cascade).notNull()
                t.column("dataset", .text).notNull()
                t.column("datasetSHA256", .text)
                t.column("metric", .text).notNull()
                t.column("value", .double).notNull()
                t.column("createdAt", .datetime).notNull()
            }
        }
        migrator.registerMigration("v2: run owner") { db in
            // The process that runs the training, so a run left "running" by a killed process
            // can be told from one still going.
            try db.alter(table: "trainingRun") { t in t.add(column: "pid", .integer) }
        }
        return migrator
    }
}
